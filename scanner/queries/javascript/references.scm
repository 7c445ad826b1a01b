; JavaScript (and TypeScript) references. Calls: `f()`, `x.f()`, `new Foo()`. Types: `extends` clauses (in
; `references_js.scm` and TypeScript's own file, as the grammars differ). Imports: the local names of `import` and of
; `require` bindings (`const x = require("m")`, `const { a, b } = require("m")`). Not seen: calls through computed
; members (`x[name]()`), `call`/`apply`.

(call_expression function: (identifier) @reference.call)
(call_expression function: (member_expression property: (property_identifier) @reference.call))
(new_expression constructor: (identifier) @reference.call)
(new_expression constructor: (member_expression property: (property_identifier) @reference.call))

(import_specifier name: (identifier) @reference.import)
(import_clause (identifier) @reference.import)
(namespace_import (identifier) @reference.import)
(variable_declarator
  name: (identifier) @reference.import
  value: (call_expression
    function: (identifier) @_require
    arguments: (arguments . (string)))
  (#eq? @_require "require"))
(variable_declarator
  name: (object_pattern (shorthand_property_identifier_pattern) @reference.import)
  value: (call_expression
    function: (identifier) @_require
    arguments: (arguments . (string)))
  (#eq? @_require "require"))
