//! gcr-build (being written).
