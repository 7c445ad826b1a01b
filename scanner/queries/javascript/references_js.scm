; JavaScript's `extends` clause (TypeScript's grammar has its own, in typescript/references.scm).

(class_heritage (identifier) @reference.type)
(class_heritage (member_expression property: (property_identifier) @reference.type))
