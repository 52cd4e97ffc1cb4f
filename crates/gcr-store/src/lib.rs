//! gcr-store (placeholder, being written).
