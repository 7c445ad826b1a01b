; Python references. Calls: `f()`, `x.f()`, and decorators (`@cache`, `@app.route(...)`), which call their name.
; Types: annotations, and base classes of a class. Imports: the names `import` and `from ... import` bring in
; (the last part of a dotted name). Not seen: calls through `getattr` or a variable.

(call function: (identifier) @reference.call)
(call function: (attribute attribute: (identifier) @reference.call))
(decorator (identifier) @reference.call)
(decorator (attribute attribute: (identifier) @reference.call))
(decorator (call function: (identifier) @reference.call))
(decorator (call function: (attribute attribute: (identifier) @reference.call)))

(type (identifier) @reference.type)
(type (attribute attribute: (identifier) @reference.type))
(type (generic_type (identifier) @reference.type))
(type (subscript value: (identifier) @reference.type))
(class_definition superclasses: (argument_list (identifier) @reference.type))
(class_definition superclasses: (argument_list (attribute attribute: (identifier) @reference.type)))

(import_statement name: (dotted_name (identifier) @reference.import .))
(import_statement name: (aliased_import name: (dotted_name (identifier) @reference.import .)))
(import_from_statement name: (dotted_name (identifier) @reference.import .))
(import_from_statement name: (aliased_import name: (dotted_name (identifier) @reference.import .)))
