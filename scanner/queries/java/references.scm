; Java references. Calls: method invocations and constructor calls (`new Foo()`). Types: every type name
; outside its own definition. Imports: the class a single-type import names.

(method_invocation name: (identifier) @reference.call)
(object_creation_expression type: (type_identifier) @reference.call)
(object_creation_expression type: (generic_type (type_identifier) @reference.call))

(type_identifier) @reference.type

(import_declaration (scoped_identifier name: (identifier) @reference.import))
