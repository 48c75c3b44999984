//! `mirage-lambda`: the Lambda function of the SQS + Lambda process. Deployed as `bootstrap` on
//! the `provided.al2023` runtime or in a container image; the event source mapping hands it SQS
//! batches of S3 events, one UNLOADed file each.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use mirage_lambda::Handler;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        eprintln!(
            "mirage-lambda is the AWS Lambda function of mirage's SQS + Lambda process; it runs \
             inside Lambda (or under mirage-lambda-runner), which sets AWS_LAMBDA_RUNTIME_API. \
             See the README: \"Redshift with the SQS + Lambda process\"."
        );
        std::process::exit(2);
    }
    let handler = Arc::new(Handler::from_env());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let handler = handler.clone();
        async move { Ok::<_, Error>(handler.handle(event.payload).await) }
    }))
    .await
}
