; C++ references. Calls: `f()`, `x.f()`, `x->f()`, `ns::f()`, `f<T>()`. Types: every type name outside its own
; definition. Imports: `using ns::name;` declarations. Not seen: calls through operators and macro expansions.

(call_expression function: (identifier) @reference.call)
(call_expression function: (field_expression field: (field_identifier) @reference.call))
(call_expression function: (qualified_identifier name: (identifier) @reference.call))
(call_expression function: (template_function name: (identifier) @reference.call))
(call_expression function: (qualified_identifier name: (template_function name: (identifier) @reference.call)))

(type_identifier) @reference.type

(using_declaration (qualified_identifier name: (identifier) @reference.import))
