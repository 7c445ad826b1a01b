; Rust references. Calls: plain, path (`a::f()`), method (`x.f()`), turbofish (`f::<T>()`) and macro calls;
; a struct literal (`Foo { .. }`) constructs a type, so it is a call too. Types: every type name outside its
; own definition (signatures, fields, casts, generics, `impl X for Y`). Imports: the leaf names of `use` trees.
; Not seen: calls through variables holding closures or function pointers, and uses inside macro bodies other than
; item-position ones (token trees are not parsed).

(call_expression function: (identifier) @reference.call)
(call_expression function: (scoped_identifier name: (identifier) @reference.call))
(call_expression function: (field_expression field: (field_identifier) @reference.call))
(call_expression function: (generic_function function: (identifier) @reference.call))
(call_expression function: (generic_function function: (scoped_identifier name: (identifier) @reference.call)))
(call_expression function: (generic_function function: (field_expression field: (field_identifier) @reference.call)))
(macro_invocation macro: (identifier) @reference.call)
(macro_invocation macro: (scoped_identifier name: (identifier) @reference.call))
(struct_expression name: (type_identifier) @reference.call)
(struct_expression name: (scoped_type_identifier name: (type_identifier) @reference.call))

(type_identifier) @reference.type

(use_declaration argument: (identifier) @reference.import)
(use_declaration argument: (scoped_identifier name: (identifier) @reference.import))
(use_list (identifier) @reference.import)
(use_list (scoped_identifier name: (identifier) @reference.import))
(use_as_clause path: (identifier) @reference.import)
(use_as_clause path: (scoped_identifier name: (identifier) @reference.import))
