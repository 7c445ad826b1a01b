; TypeScript references on top of JavaScript's: every type name outside its own definition (annotations,
; generics, `implements`, `extends` of interfaces).

(type_identifier) @reference.type
(nested_type_identifier name: (type_identifier) @reference.type)
(extends_clause value: (identifier) @reference.type)
(extends_clause value: (member_expression property: (property_identifier) @reference.type))
