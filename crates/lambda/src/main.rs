//! `mirage-lambda`: the Lambda function of the SQS + Lambda process. Deployed as `bootstrap` on
//! the `provided.al2023` runtime or in a container image; the event source mapping hands it SQS
//! batches of S3 events, one UNLOADed file each.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use mirage_lambda::Handler;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let handler = Arc::new(Handler::from_env());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let handler = handler.clone();
        async move { Ok::<_, Error>(handler.handle(event.payload).await) }
    }))
    .await
}
