; Python definitions. Started from tree-sitter-python's tags.scm; functions inside a class become methods
; in code. Module-level assignments are variables, as Universal Ctags reports them.

; `f = lambda x: ...` names a function, as ctags counts it; this pattern comes before the variable one so
; that it wins for the same name.
(assignment left: (identifier) @name right: (lambda)) @definition.function
(class_definition name: (identifier) @name) @definition.class
(function_definition name: (identifier) @name) @definition.function
(module (expression_statement (assignment left: (identifier) @name) @definition.variable))
