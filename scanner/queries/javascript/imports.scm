; JavaScript and TypeScript imports: `import ... from "m"`, `import "m"`, `export ... from "m"`,
; `require("m")` and dynamic `import("m")`. Only string literals name a module; template strings and
; expressions are left out because they cannot be resolved without running the code.

(import_statement source: (string (string_fragment) @import.use))
(export_statement source: (string (string_fragment) @import.use))
(call_expression
  function: (identifier) @_require
  arguments: (arguments . (string (string_fragment) @import.use))
  (#eq? @_require "require"))
(call_expression
  function: (import)
  arguments: (arguments . (string (string_fragment) @import.use)))
