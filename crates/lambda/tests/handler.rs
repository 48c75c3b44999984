//! The handler against S3 in moto: an UNLOADed file in, the same bytes the worker's transform
//! gives out, a result object beside it; a poison file is reported as a batch item failure with
//! no value in its error; test events and unknown jobs are acknowledged.

use bytes::Bytes;
use mirage_connectors::staging::{self, FileResult, JobFile, Location, Staging};
use mirage_core::ValueType;
use mirage_lambda::Handler;
use mirage_testkit::MotoServer;
use mirage_transform::spec::{ColumnSpec, ConsistencyKey, FormatSpec, SPEC_VERSION, TableSpec};
use serde_json::json;

fn column(name: &str, generator: &str) -> ColumnSpec {
    ColumnSpec {
        name: name.into(),
        type_name: "varchar(100)".into(),
        value_type: ValueType::Text {
            max_chars: Some(100),
        },
        not_null: false,
        generator: generator.into(),
        options: serde_json::Map::new(),
        inherited_from: None,
        stats: None,
    }
}

/// An SQS event whose one message is moto's S3 event for `key` (`/` as `%2F`).
fn event(id: &str, key: &str) -> serde_json::Value {
    let body = json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventTime": "2026-11-30T12:00:00.000",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "mirage-handler"}, "object": {"key": key.replace('/', "%2F"), "size": 10}}
    }]});
    json!({"Records": [{"messageId": id, "body": body.to_string(), "eventSource": "aws:sqs"}]})
}

#[test]
fn the_handler_transforms_files_reports_poison_and_ignores_strangers() {
    let moto = MotoServer::start().expect("moto");
    moto.create_bucket("mirage-handler").expect("bucket");
    // SAFETY: this test binary has one test; nothing else reads the environment concurrently.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let location = Location {
            bucket: "mirage-handler".into(),
            region: "us-east-1".into(),
            endpoint: Some(moto.endpoint()),
            root: "jobs/20261130-120000-abcd".into(),
        };
        let job = JobFile {
            version: 1,
            compression: Default::default(),
            kms_key_id: None,
        };
        let st = Staging::at(&location, &job).expect("staging");
        let key = ConsistencyKey::from_seed("seed");
        st.put(&st.job_key(), serde_json::to_vec(&job).unwrap().into())
            .await
            .unwrap();
        st.put(&st.secret_key(), key.to_secret_text().into_bytes().into())
            .await
            .unwrap();
        let table = mirage_core::QualifiedName::new("sales", "people");
        let spec = TableSpec {
            version: SPEC_VERSION,
            table: table.to_string(),
            format: FormatSpec::of(&staging::format()),
            byte_lengths: true,
            columns: vec![column("id", "passthrough"), column("name", "full_name")],
        };
        st.put(&st.spec_key(&table), spec.to_json().into())
            .await
            .unwrap();
        let input = b"1,Ada Lovelace\n2,__MIRAGE_NULL__\n3,\"\"\n4,\"O'Brien, \"\"Pat\"\"\"\n";
        let packed = staging::compress(job.compression, input).unwrap();
        let file = "0000_part_00.zst";
        let input_key = format!("{}{file}", st.input_prefix(&table));
        st.put(&input_key, Bytes::from(packed)).await.unwrap();

        let handler = Handler::new("us-east-1".into(), Some(moto.endpoint()));
        let response = handler.handle(event("m1", &input_key)).await;
        assert_eq!(response["batchItemFailures"], json!([]), "{response}");
        let out = st
            .get(&format!("{}{file}", st.output_prefix(&table)))
            .await
            .unwrap()
            .expect("the output file");
        let out = staging::decompress(job.compression, &out).unwrap();
        // Exactly what the worker's own transform gives for the same spec and key.
        let mut expected = Vec::new();
        spec.transform(&key)
            .unwrap()
            .apply(input, &mut expected)
            .unwrap();
        assert_eq!(out, expected);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\n2,__MIRAGE_NULL__\n"), "NULL kept: {text}");
        assert!(
            !text.contains("Lovelace") && !text.contains("Brien"),
            "{text}"
        );
        let result: FileResult = serde_json::from_slice(
            &st.get(&format!("{}{file}.json", st.results_prefix(&table)))
                .await
                .unwrap()
                .expect("result"),
        )
        .unwrap();
        assert_eq!((result.records_in, result.records_out), (4, 4));
        assert!(result.error.is_none() && result.bytes_out > 0);

        // A file the transform cannot read: a batch item failure, a result naming the
        // record, and no value anywhere.
        let poison_key = format!("{}0001_part_00.zst", st.input_prefix(&table));
        let poison = staging::compress(job.compression, b"5,secret-value,extra\n").unwrap();
        st.put(&poison_key, Bytes::from(poison)).await.unwrap();
        let response = handler.handle(event("m2", &poison_key)).await;
        assert_eq!(
            response["batchItemFailures"],
            json!([{"itemIdentifier": "m2"}])
        );
        let result: FileResult = serde_json::from_slice(
            &st.get(&format!(
                "{}0001_part_00.zst.json",
                st.results_prefix(&table)
            ))
            .await
            .unwrap()
            .expect("result"),
        )
        .unwrap();
        let error = result.error.expect("an error");
        assert!(
            error.contains("sales.people") && error.contains("record 1"),
            "{error}"
        );
        assert!(!error.contains("secret-value"), "{error}");

        // The S3 test event, a job with no spec, the manifest: acknowledged, nothing written.
        let test_event = json!({"Records": [{"messageId": "m3",
            "body": json!({"Service": "Amazon S3", "Event": "s3:TestEvent"}).to_string()}]});
        assert_eq!(
            handler.handle(test_event).await["batchItemFailures"],
            json!([])
        );
        let stranger = "jobs/20990101-000000-0000/input/sales/people/0000_part_00.zst";
        assert_eq!(
            handler.handle(event("m4", stranger)).await["batchItemFailures"],
            json!([])
        );
        let manifest = format!("{}manifest", st.input_prefix(&table));
        assert_eq!(
            handler.handle(event("m5", &manifest)).await["batchItemFailures"],
            json!([])
        );
        let results = st.list(&st.results_prefix(&table)).await.unwrap();
        assert_eq!(results.len(), 2, "{results:?}");
    });
}
