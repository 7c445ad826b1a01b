; TypeScript-only definitions, joined in code with javascript/common.scm and javascript/imports.scm.
; Started from tree-sitter-typescript's tags.scm (which covers only these TypeScript nodes), adding type
; aliases, enums and their members, namespaces, class/interface fields and construct signatures.

(function_signature name: (identifier) @name) @definition.function
(method_signature name: (_) @name) @definition.method
(abstract_method_signature name: (_) @name) @definition.method
(abstract_class_declaration name: (type_identifier) @name) @definition.class
(interface_declaration name: (type_identifier) @name) @definition.interface
(type_alias_declaration name: (type_identifier) @name) @definition.type
(enum_declaration name: (identifier) @name) @definition.enum
(enum_body name: (_) @name @definition.variant)
(enum_body (enum_assignment name: (_) @name) @definition.variant)
(module name: (_) @name) @definition.module
(internal_module name: (_) @name) @definition.namespace
(public_field_definition name: (_) @name) @definition.field
; A construct signature (`new (message: string): AjaxError;`) is named `new`, as Universal Ctags names it.
(construct_signature "new" @name) @definition.method
; A member whose type is a function (`array: <T>(values?: T[]) => IObservableArray<T>`) is a method; it comes
; before the plain member pattern so that it wins.
(property_signature name: (_) @name type: (type_annotation (function_type))) @definition.method
(property_signature name: (_) @name) @definition.field
