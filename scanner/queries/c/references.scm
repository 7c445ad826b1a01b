; C references. Calls: `f()` and calls through a struct member (`ops->read()`). Types: typedef names and
; `struct`/`union`/`enum` tags outside their own definitions. No imports: `#include` names files, which
; dependencies cover. Not seen: macro expansions (no preprocessor runs).

(call_expression function: (identifier) @reference.call)
(call_expression function: (field_expression field: (field_identifier) @reference.call))

(type_identifier) @reference.type
