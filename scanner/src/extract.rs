//! Extraction: definitions and imports from one parsed file.
