//! Other engines read the warehouse: delta-rs' Python binding (PyPI
//! `deltalake`) reads each table and gets exactly the rows Contrail wrote.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

use crate::harness::{BACKENDS, Backend, DAY_MS, DAY0, TestLocation, compactor, event, s3_options};

// The reader leaves with `os._exit`: PyPI deltalake 1.6.6 with pyarrow 26
// aborts in interpreter teardown ("terminate called without an active
// exception") in about half of the runs, after its work is done, even on a
// table it wrote itself.
const READER: &str = r#"
import json, os, sys
import deltalake
uri, options = sys.argv[1], json.loads(sys.argv[2])
table = deltalake.DeltaTable(uri, storage_options=options or None)
data = table.to_pyarrow_table()
rows = sorted(data.to_pylist(), key=lambda r: r["event_id"])
print(json.dumps({
    "version": table.version(),
    "partitions": table.metadata().partition_columns,
    "configuration": table.metadata().configuration,
    "columns": data.schema.names,
    "rows": [{"event_id": r["event_id"], "date": str(r["date"]), "properties": r["properties"],
              "timestamp": r["timestamp"].isoformat(timespec="microseconds"), "distinct_id": r["distinct_id"]} for r in rows],
}), flush=True)
os._exit(0)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_rs_python_reads_exactly_the_rows_contrail_wrote() {
    let python = contrail_testkit::python();
    for backend in BACKENDS {
        let t = TestLocation::new(backend);
        let written = vec![
            event("acme", "p1", DAY0 + 1_500),
            event("acme", "p2", DAY0 + DAY_MS + 2_250),
            event("acme", "p3", DAY0 + DAY_MS + 9_000),
        ];
        t.put_raw(&written, DAY0 + 2 * DAY_MS, 1).await;
        t.put_raw(&written[..1], DAY0 + 2 * DAY_MS + 1, 2).await; // a duplicate
        compactor(&t).run_once().await.unwrap();

        let (uri, options) = match backend {
            Backend::Local => (t.location.table_url("acme").to_file_path().unwrap().display().to_string(), Value::Null),
            Backend::S3 => {
                let o = s3_options();
                (
                    format!("s3://{}/warehouse/tables/acme", t.bucket.as_ref().unwrap()),
                    serde_json::json!({
                        "AWS_ENDPOINT_URL": o.endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true",
                    }),
                )
            }
        };
        let output = Command::new(&python).args(["-c", READER, &uri, &options.to_string()]).output().unwrap();
        assert!(output.status.success(), "{backend:?}: {}", String::from_utf8_lossy(&output.stderr));
        let read: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(read["partitions"], serde_json::json!(["date"]));
        assert_eq!(read["configuration"]["contrail.schemaVersion"], contrail_edge::schema::SCHEMA_VERSION);
        let columns: BTreeSet<&str> = read["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        for field in contrail_edge::schema::event_schema().fields() {
            assert!(columns.contains(field.name().as_str()), "{backend:?}: column {} missing", field.name());
        }
        let rows = read["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 3, "{backend:?}: {read}");
        for (row, event) in rows.iter().zip(&written) {
            assert_eq!(row["event_id"], event.event_id);
            assert_eq!(row["properties"], event.properties);
            assert_eq!(row["distinct_id"], event.distinct_id);
            let ts = chrono::DateTime::from_timestamp_millis(event.timestamp).unwrap();
            assert_eq!(row["date"], ts.format("%Y-%m-%d").to_string());
            assert_eq!(row["timestamp"], ts.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string(), "{backend:?}");
        }
    }
}
