//! Fuzz target: arbitrary bytes as the JSON body of `POST /containers/create`, of
//! `POST /containers/{id}/update` and of `POST /networks/create` and `/networks/{id}/connect`,
//! decoded by gcr-api as the service does. It must never
//! panic; a refusal is a 400 with a sentence, and a body that is accepted once is accepted
//! again with the same result (the decoding has no hidden state).
#![no_main]

use gcr_api::fuzzing::{
    create_body, network_connect_body, network_create_body, update_body, Refused,
};
use libfuzzer_sys::fuzz_target;

fn check(r: &Result<String, Refused>) {
    if let Err(e) = r {
        assert_eq!(e.status, 400, "a bad body is a 400: {e:?}");
        assert!(!e.message.trim().is_empty(), "a refusal says why");
    }
}

fuzz_target!(|data: &[u8]| {
    let created = create_body(data, Some("/fuzz"));
    check(&created);
    let again = create_body(data, Some("/fuzz"));
    assert_eq!(
        created.as_ref().ok(),
        again.as_ref().ok(),
        "the same body decodes the same way"
    );
    check(&update_body(data));
    check(&network_create_body(data));
    check(&network_connect_body(data));
});
