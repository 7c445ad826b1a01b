; Java imports, including `import static a.B.c;` and `import a.b.*;`: the module text is assembled in code.

(import_declaration) @import.java
