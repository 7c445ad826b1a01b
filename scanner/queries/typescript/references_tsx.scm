; TSX: JSX elements call their component (`<Button/>`); lowercase names are HTML tags, not components.

(jsx_opening_element name: (identifier) @reference.call (#match? @reference.call "^[A-Z]"))
(jsx_self_closing_element name: (identifier) @reference.call (#match? @reference.call "^[A-Z]"))
