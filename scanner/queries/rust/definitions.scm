; Rust definitions. Started from tree-sitter-rust's tags.scm, with precise kinds (struct, enum, union and
; type alias are not all "class"), impl blocks named after the type they implement, constants, statics,
; enum variants, fields and trait method declarations. Functions inside impl/trait blocks become methods
; in code (extract.rs), from their container, so one pattern serves both.

(struct_item name: (type_identifier) @name) @definition.struct
(enum_item name: (type_identifier) @name) @definition.enum
(union_item name: (type_identifier) @name) @definition.union
(type_item name: (type_identifier) @name) @definition.type
(trait_item name: (type_identifier) @name) @definition.interface
(function_item name: (identifier) @name) @definition.function
(function_signature_item name: (identifier) @name) @definition.function
(mod_item name: (identifier) @name body: (_)) @definition.module
(macro_definition name: (identifier) @name) @definition.macro
(const_item name: (identifier) @name) @definition.constant
(static_item name: (identifier) @name) @definition.constant
(enum_variant name: (identifier) @name) @definition.variant
(field_declaration name: (field_identifier) @name) @definition.field
(associated_type name: (type_identifier) @name) @definition.type

; `impl Trait for Type` and `impl Type` are both named after Type, the thing a reader looks for; impls for
; primitives, slices, pointers and tuples are named after their (last) element type, as Universal Ctags does.
(impl_item
  type: [
    (type_identifier) @name
    (generic_type type: (type_identifier) @name)
    (scoped_type_identifier name: (type_identifier) @name)
    (generic_type type: (scoped_type_identifier name: (type_identifier) @name))
    (reference_type type: (type_identifier) @name)
    (reference_type type: (generic_type type: (type_identifier) @name))
    (primitive_type) @name
    (reference_type type: (primitive_type) @name)
    (array_type element: [(primitive_type) (type_identifier)] @name)
    (reference_type type: (array_type element: [(primitive_type) (type_identifier)] @name))
    (pointer_type type: (type_identifier) @name)
    (tuple_type (_) @name .)
  ]) @definition.impl
