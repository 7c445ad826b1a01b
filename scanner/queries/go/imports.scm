; Go imports, single and grouped: every import_spec names one package path.

(import_spec path: (_) @import.use)
