; Go references. Calls: `f()`, `pkg.F()`, `x.M()`. Types: every type name outside its own definition.
; Imports: a package's name (its alias, or the last segment of its path, which is the usual package name).

(call_expression function: (identifier) @reference.call)
(call_expression function: (selector_expression field: (field_identifier) @reference.call))
(composite_literal type: (type_identifier) @reference.call)
(composite_literal type: (qualified_type name: (type_identifier) @reference.call))

(type_identifier) @reference.type

(import_spec name: (package_identifier) @reference.import)
(import_spec !name path: (interpreted_string_literal) @reference.import_path)
