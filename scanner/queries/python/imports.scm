; Python imports: both statements are taken apart in code, which knows `import a.b as c`,
; `from .x import y, z` and `from m import *`.

(import_statement) @import.python_import
(import_from_statement) @import.python_from
