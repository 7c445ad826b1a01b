; JavaScript definitions shared with TypeScript and TSX (the TypeScript grammars extend the JavaScript one).
; Started from tree-sitter-javascript's tags.scm, without its references and its doc-comment predicates:
; doc comments are read in code, which is much faster than `#strip!`/`#select-adjacent!`. Beyond tags.scm it
; covers JavaScript as CommonJS libraries and their tests write it (named function expressions wherever they are,
; `Foo.prototype.bar = ...`, string-keyed members); `scanner/benches/recall.rs` measures it against Universal Ctags.

; Declarations anywhere, nested in callbacks too: `describe('x', function () { function accept() {} })`.
(function_declaration name: (identifier) @name) @definition.function
(generator_function_declaration name: (identifier) @name) @definition.function
(class_declaration name: (_) @name) @definition.class
(method_definition name: (_) @name) @definition.method

; `const f = () => ...`, `let g = function () {}`, `var C = class {}`.
(variable_declarator
  name: (identifier) @name
  value: [(arrow_function) (function_expression) (generator_function)]) @definition.function
(variable_declarator name: (identifier) @name value: (class)) @definition.class

; `Foo.prototype.bar = ...` defines a method of `Foo` whatever the value (a function, an alias such as
; `Negotiator.prototype.preferredCharset = Negotiator.prototype.charset`, a wrapped function), as Universal Ctags
; reads it; a plain value (`Component.prototype.isReactComponent = true`) is a field. These come before the
; plain assignments below so that they win for the same name.
(assignment_expression
  left: (member_expression
    object: (member_expression
      object: (identifier) @scope
      property: (property_identifier) @_prototype)
    property: (property_identifier) @name)
  right: [(true) (false) (null) (undefined) (number) (string) (template_string) (object) (array)]
  (#eq? @_prototype "prototype")) @definition.field
(assignment_expression
  left: (member_expression
    object: (member_expression
      object: (identifier) @scope
      property: (property_identifier) @_prototype)
    property: (property_identifier) @name)
  (#eq? @_prototype "prototype")) @definition.method

; `exports.f = function () {}`, `module.exports.g = () => {}`, `f = function () {}`.
(assignment_expression
  left: [
    (identifier) @name
    (member_expression property: (property_identifier) @name)
  ]
  right: [(arrow_function) (function_expression) (generator_function)]) @definition.function

; `exports.Parser = class {}`, `SessionCache = class SimpleSessionCache {}` (the class's own name is below).
(assignment_expression
  left: [
    (identifier) @name
    (member_expression property: (property_identifier) @name)
  ]
  right: (class)) @definition.class

; Named function and class expressions wherever they are: passed as arguments
; (`defineGetter(req, 'host', function host() {})`, `stream.on('end', function onend() {})`), returned
; (`return function query(req, res, next) {}`), assigned under another name
; (`module.exports = function createApplication() {}`, `module.exports = class Pluralizer {}`). One that is
; the value of a definition of the same name (`exports.send = function send() {}`) is that definition, not a
; second one: extraction merges them (see `finish_definitions`).
(function_expression name: (identifier) @name) @definition.function
(generator_function name: (identifier) @name) @definition.function
(class name: (_) @name) @definition.class

; Object literal members that are functions: `{ start() {} }` is a method_definition already;
; `{ start: function () {} }` and `{ 'delete': function () {} }` are this pair.
(pair
  key: [(property_identifier) (string)] @name
  value: [(arrow_function) (function_expression) (generator_function)]) @definition.method

; Module-level constants: `const LIMIT = 10`, `export const LIMIT = 10`. Function-valued ones match the
; patterns above first and keep their function kind.
(program (lexical_declaration (variable_declarator name: (identifier) @name) @definition.constant))
(program (export_statement declaration: (lexical_declaration (variable_declarator name: (identifier) @name) @definition.constant)))
