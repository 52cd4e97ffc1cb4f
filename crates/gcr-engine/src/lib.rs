//! gcr-engine (placeholder, being written).
