; C definitions. Started from tree-sitter-c's tags.scm, which also tags prototypes: here only function
; *definitions* (with a body) count, as Universal Ctags counts prototypes apart (kind `p`). The name of
; a function or typedef is found in code by descending through pointer, array and parenthesized
; declarators (`char **(*f)(void)`), which a query could only do one nesting depth at a time.

(function_definition declarator: (_) @declarator) @definition.function
(struct_specifier name: (type_identifier) @name body: (_)) @definition.struct
(union_specifier name: (type_identifier) @name body: (_)) @definition.union
(enum_specifier name: (type_identifier) @name body: (_)) @definition.enum
(type_definition declarator: (_) @declarator) @definition.type
(enumerator name: (identifier) @name) @definition.variant
(field_declaration declarator: (_) @declarator) @definition.field
(preproc_def name: (identifier) @name) @definition.macro
(preproc_function_def name: (identifier) @name) @definition.macro
