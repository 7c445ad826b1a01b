; JavaScript definitions shared with TypeScript and TSX (the TypeScript grammars extend the JavaScript one).
; Started from tree-sitter-javascript's tags.scm, without its references and its doc-comment predicates:
; doc comments are read in code, which is much faster than `#strip!`/`#select-adjacent!`.

(function_declaration name: (identifier) @name) @definition.function
(generator_function_declaration name: (identifier) @name) @definition.function
(class_declaration name: (_) @name) @definition.class
(method_definition name: (_) @name) @definition.method

; `const f = () => ...`, `let g = function () {}`, `var C = class {}`.
(variable_declarator
  name: (identifier) @name
  value: [(arrow_function) (function_expression) (generator_function)]) @definition.function
(variable_declarator name: (identifier) @name value: (class)) @definition.class

; `exports.f = function () {}`, `Foo.prototype.bar = () => {}`, `f = function () {}`.
(assignment_expression
  left: [
    (identifier) @name
    (member_expression property: (property_identifier) @name)
  ]
  right: [(arrow_function) (function_expression) (generator_function)]) @definition.function

; Object literal members that are functions: `{ start() {} }` is a method_definition already;
; `{ start: function () {} }` is this pair.
(pair
  key: (property_identifier) @name
  value: [(arrow_function) (function_expression) (generator_function)]) @definition.method

; Module-level constants: `const LIMIT = 10`, `export const LIMIT = 10`. Function-valued ones match the
; patterns above first and keep their function kind.
(program (lexical_declaration (variable_declarator name: (identifier) @name) @definition.constant))
(program (export_statement declaration: (lexical_declaration (variable_declarator name: (identifier) @name) @definition.constant)))
