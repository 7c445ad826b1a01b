; C++ definitions. Started from tree-sitter-cpp's tags.scm; as in C, prototypes (in-class method
; declarations included) are left out, and names are found in code through declarators. A function
; whose declarator is qualified (`void Foo::bar() {}`) is a method of `Foo`, defined out of line.

; `= default` and `= delete` have no body: they are declarations, as ctags counts them.
(function_definition declarator: (_) @declarator body: (_)) @definition.function
(class_specifier name: (_) @name body: (_)) @definition.class
(struct_specifier name: (_) @name body: (_)) @definition.struct
(union_specifier name: (_) @name body: (_)) @definition.union
(enum_specifier name: (_) @name body: (_)) @definition.enum
(namespace_definition name: (_) @name) @definition.namespace
(type_definition declarator: (_) @declarator) @definition.type
(alias_declaration name: (type_identifier) @name) @definition.type
(concept_definition name: (identifier) @name) @definition.type
(enumerator name: (identifier) @name) @definition.variant
(field_declaration declarator: (_) @declarator) @definition.field
(preproc_def name: (identifier) @name) @definition.macro
(preproc_function_def name: (identifier) @name) @definition.macro
