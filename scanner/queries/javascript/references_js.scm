; JavaScript's `extends` clause (TypeScript's grammar has its own, in typescript/references.scm).

(class_heritage (identifier) @reference.type)
(class_heritage (member_expression property: (property_identifier) @reference.type))

; JSX elements call their component (`<Button/>`); lowercase names are HTML tags, not components.
(jsx_opening_element name: (identifier) @reference.call (#match? @reference.call "^[A-Z]"))
(jsx_self_closing_element name: (identifier) @reference.call (#match? @reference.call "^[A-Z]"))
