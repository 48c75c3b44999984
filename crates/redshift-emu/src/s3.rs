//! Object stores for the emulator: S3 at a configurable endpoint (moto in tests, AWS for real),
//! one store per bucket, as `UNLOAD`/`COPY` name buckets in their URLs.

use crate::statement::Rejected;
use object_store::aws::{AmazonS3, AmazonS3Builder};

/// An S3 bucket at `endpoint` (e.g. `http://127.0.0.1:5000` for moto), or AWS when `None`
/// (credentials and region from the environment).
pub fn bucket(name: &str, endpoint: Option<&str>, region: &str) -> Result<AmazonS3, Rejected> {
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(name)
        .with_region(region);
    if let Some(e) = endpoint {
        // moto accepts any credentials; plain HTTP on loopback.
        b = b
            .with_endpoint(e)
            .with_allow_http(true)
            .with_access_key_id("emulator")
            .with_secret_access_key("emulator");
    }
    b.build()
        .map_err(|e| Rejected(format!("S3 bucket {name}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statement::{Statement, parse};
    use crate::testing::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn unload_and_copy_through_s3_in_moto() {
        let moto = mirage_testkit::MotoServer::start().expect("moto");
        moto.create_bucket("staging").expect("bucket");
        let store = bucket("staging", Some(&moto.endpoint()), "us-east-1").unwrap();
        let (pg, mut client) = crate::testing::database(
            "CREATE TABLE src (id int, v text);
             INSERT INTO src SELECT i, CASE WHEN i % 3 = 0 THEN NULL WHEN i % 3 = 1 THEN '' ELSE 'v' || i END
             FROM generate_series(1, 1000) i;
             CREATE TABLE dst (id int, v text);",
        )
        .await;
        let Statement::Unload(u) = parse(
            "UNLOAD ('select * from src') TO 's3://staging/job/input/src/' IAM_ROLE default \
             CSV NULL AS '__N__' GZIP MANIFEST VERBOSE",
        )
        .unwrap() else {
            panic!()
        };
        let out = run_unload(&mut client, &store, &u).await.unwrap();
        assert_eq!(out.rows, 1000);
        let Statement::Copy(c) = parse(
            "COPY dst FROM 's3://staging/job/input/src/manifest' IAM_ROLE default MANIFEST CSV GZIP NULL AS '__N__'",
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(run_copy(&mut client, &store, &c).await.unwrap(), 1000);
        let q = "SELECT count(*) FILTER (WHERE v IS NULL) || ' ' || count(*) FILTER (WHERE v = '') || ' ' || count(*) FROM ";
        assert_eq!(
            pg.psql("rs", &format!("{q} dst")).unwrap(),
            pg.psql("rs", &format!("{q} src")).unwrap()
        );
        assert_eq!(pg.psql("rs", &format!("{q} dst")).unwrap(), "333 334 1000");
    }
}
