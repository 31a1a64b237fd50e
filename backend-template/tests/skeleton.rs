//! The skeleton compiles against the current traits and says what it lacks.

use std::path::Path;

use backend_template::{BACKEND, TemplateSupplier};
use state_core::{ErrorKind, KeyRange, KeyValueBytesStoreSupplier, Position, WriteBatch};

#[test]
fn every_unimplemented_method_says_which_it_is() {
    let store = TemplateSupplier::new("s")
        .open(Path::new("unused"))
        .unwrap();
    let checks: [(&str, state_core::Error); 6] = [
        ("get", store.get(b"k").unwrap_err()),
        ("put", store.put(b"k", b"v").unwrap_err()),
        (
            "write_with_position",
            store
                .write_with_position(&WriteBatch::new(), &Position::empty())
                .unwrap_err(),
        ),
        ("range", store.range(&KeyRange::all()).err().unwrap()),
        (
            "reverse_range",
            store.reverse_range(&KeyRange::all()).err().unwrap(),
        ),
        (
            "approximate_num_entries",
            store.approximate_num_entries().unwrap_err(),
        ),
    ];
    for (method, err) in checks {
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{method}");
        assert!(err.to_string().contains(method), "{method}: {err}");
    }
}

#[test]
fn the_registration_reports_the_facts_its_store_and_supplier_do() {
    let supplier = BACKEND.supplier("s");
    assert_eq!(supplier.name(), "s");
    assert_eq!(supplier.capability(), BACKEND.capability());
    let store = supplier.open(Path::new("unused")).unwrap();
    assert_eq!(store.capability(), BACKEND.capability());
    assert_eq!(BACKEND.name(), "template");
}
