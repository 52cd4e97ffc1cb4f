//! gcr-core (placeholder, being written).
