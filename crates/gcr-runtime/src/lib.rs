//! gcr-runtime (placeholder, being written).
