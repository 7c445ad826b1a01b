; JavaScript-only definitions (the TypeScript grammars name class fields differently).

(field_definition property: (property_identifier) @name) @definition.field
