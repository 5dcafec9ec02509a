"""The AWS back end: DynamoDB (`bqx_predictions`), S3 (`bqx-ml-models/online/`), CloudWatch.

One DynamoDB table, keyed (pk, sk), both strings; sk starts with the zero-padded epoch second
so a key range is a time range:
- predictions  pk `PRED#<PAIR>#<horizon>`, sk `<epoch>`: written with a conditional put
  (`attribute_not_exists(pk)`), so a re-run never overwrites; `realized` / `learned_at` are
  set by a conditional update once;
- drift events pk `DRIFT#<PAIR>`, sk `<epoch>#<detector>`, conditional put as well;
- weights      pk `WEIGHTS#<PAIR>`, sk `<epoch>#<member>`.
Checkpoints: `s3://<bucket>/<prefix><PAIR>/v<version>.pkl`, then the pointer object
`<prefix><PAIR>/pointer.json` is replaced (a single PUT is atomic in S3); the pointer holds the
version's keyed digest, checked before unpickling (checkpoint_key.py). The alarm: metric
`DriftEvents` in namespace `BQX/Online` (with and without a Pair dimension), on which the
template's CloudWatch alarm fires; `StepSeconds` records each step's latency.

Credentials come from boto3's usual chain (the Lambda role in AWS); `endpoint_url` points the
clients at another endpoint (moto's server in the tests).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import boto3
from botocore.exceptions import ClientError

from bqx.config import Settings
from bqx.errors import BqxUserError
from bqx_online.checkpoint_key import CheckpointKey
from bqx_online.records import CheckpointInfo, DriftEvent, Learned, Prediction, Snapshot, WeightRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AwsConfig:
    table: str = "bqx_predictions"
    bucket: str = "bqx-ml-models"
    prefix: str = "online/"
    namespace: str = "BQX/Online"
    alarm_name: str = "bqx-online-drift"
    region: str = "us-east-1"
    endpoint_url: str | None = None
    keep_checkpoints: int = 3


def _epoch_key(ts: datetime) -> str:
    return f"{int(ts.timestamp()):012d}"


def _from_key(key: str) -> datetime:
    return datetime.fromtimestamp(int(key[:12]), tz=UTC)


def _number(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def _conditional_failed(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class AwsStore:
    def __init__(self, config: AwsConfig | None = None, key: CheckpointKey | None = None) -> None:
        self.config = config or AwsConfig()
        # the digest key (checkpoint_key.py): BQX_ONLINE_CHECKPOINT_KEY (the Lambda's), else
        # the key file of $BQX_HOME
        home_keys = Settings.from_env().artifacts_dir / "online"
        self.key = key or CheckpointKey.load(os.environ, home_keys)
        kwargs = {"region_name": self.config.region, "endpoint_url": self.config.endpoint_url}
        if boto3.Session().get_credentials() is None:
            raise BqxUserError(
                "the aws backend needs AWS credentials (AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, a profile, or a role): none found"
            )
        self.dynamodb = boto3.client("dynamodb", **kwargs)
        self.s3 = boto3.client("s3", **kwargs)
        self.cloudwatch = boto3.client("cloudwatch", **kwargs)

    # ------------------------------------------------------------------ set-up (dev, tests)
    def ensure(self) -> None:
        """Create the table, bucket and alarm when missing (the SAM template owns them in AWS)."""
        c = self.config
        try:
            self.dynamodb.describe_table(TableName=c.table)
        except ClientError as err:
            if err.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            self.dynamodb.create_table(
                TableName=c.table,
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
            self.dynamodb.get_waiter("table_exists").wait(TableName=c.table)
        try:
            self.s3.head_bucket(Bucket=c.bucket)
        except ClientError:
            self.s3.create_bucket(Bucket=c.bucket)
        self.cloudwatch.put_metric_alarm(
            AlarmName=c.alarm_name,
            Namespace=c.namespace,
            MetricName="DriftEvents",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1.0,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="notBreaching",
        )

    def _put_once(self, item: dict) -> bool:
        """Put an item unless its key exists (exactly-once writes); False when it did."""
        try:
            self.dynamodb.put_item(
                TableName=self.config.table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as err:
            if not _conditional_failed(err):
                raise
            return False
        return True

    # ------------------------------------------------------------------ predictions
    def put_predictions(self, predictions: list[Prediction]) -> list[bool]:
        written = []
        for p in predictions:
            item = {
                "pk": {"S": f"PRED#{p.pair}#{p.horizon_minutes}"},
                "sk": {"S": _epoch_key(p.ts_utc)},
                "pair": {"S": p.pair},
                "prediction": {"N": str(_number(p.prediction))},
                "member_predictions": {"S": json.dumps(p.member_predictions)},
                "weights": {"S": json.dumps(p.weights)},
                "created_at": {"S": datetime.now(UTC).isoformat()},
            }
            if p.static_prediction is not None:
                item["static_prediction"] = {"N": str(_number(p.static_prediction))}
            written.append(self._put_once(item))
        return written

    def predictions(
        self, pair: str, horizon: int, after: datetime, until: datetime
    ) -> list[Prediction]:
        low = f"{int(after.timestamp()) + 1:012d}"
        high = _epoch_key(until)
        if low > high:
            return []
        out: list[Prediction] = []
        kwargs = {
            "TableName": self.config.table,
            "KeyConditionExpression": "pk = :pk and sk between :low and :high",
            "ExpressionAttributeValues": {
                ":pk": {"S": f"PRED#{pair}#{horizon}"},
                ":low": {"S": low},
                ":high": {"S": high},
            },
            "ConsistentRead": True,
        }
        while True:
            page = self.dynamodb.query(**kwargs)
            for item in page["Items"]:
                out.append(
                    Prediction(
                        pair=pair,
                        ts_utc=_from_key(item["sk"]["S"]),
                        horizon_minutes=horizon,
                        prediction=float(item["prediction"]["N"]),
                        member_predictions=json.loads(item["member_predictions"]["S"]),
                        weights=json.loads(item["weights"]["S"]),
                        static_prediction=(
                            float(item["static_prediction"]["N"])
                            if "static_prediction" in item
                            else None
                        ),
                        realized=float(item["realized"]["N"]) if "realized" in item else None,
                        learned_at=(
                            datetime.fromisoformat(item["learned_at"]["S"])
                            if "learned_at" in item
                            else None
                        ),
                    )
                )
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def mark_learned(self, learned: list[Learned]) -> None:
        for m in learned:
            try:
                self.dynamodb.update_item(
                    TableName=self.config.table,
                    Key={
                        "pk": {"S": f"PRED#{m.pair}#{m.horizon_minutes}"},
                        "sk": {"S": _epoch_key(m.ts_utc)},
                    },
                    UpdateExpression="SET realized = :r, learned_at = :l",
                    ConditionExpression="attribute_exists(pk) and attribute_not_exists(learned_at)",
                    ExpressionAttributeValues={
                        ":r": {"N": str(_number(m.realized))},
                        ":l": {"S": m.learned_at.isoformat()},
                    },
                )
            except ClientError as err:
                if not _conditional_failed(err):
                    raise

    # ------------------------------------------------------------------ weights, drift
    def put_weights(self, rows: list[WeightRow]) -> None:
        requests = []
        for r in rows:
            item = {
                "pk": {"S": f"WEIGHTS#{r.pair}"},
                "sk": {"S": f"{_epoch_key(r.ts_utc)}#{r.member}"},
                "weight": {"N": str(_number(r.weight))},
            }
            if r.recent_mae is not None:
                item["recent_mae"] = {"N": str(_number(r.recent_mae))}
            requests.append({"PutRequest": {"Item": item}})
        for start in range(0, len(requests), 25):  # BatchWriteItem takes 25 at most
            pending = {self.config.table: requests[start : start + 25]}
            while pending:
                answer = self.dynamodb.batch_write_item(RequestItems=pending)
                pending = answer.get("UnprocessedItems") or {}

    def put_drift_events(self, events: list[DriftEvent]) -> list[bool]:
        written = []
        for e in events:
            item = {
                "pk": {"S": f"DRIFT#{e.pair}"},
                "sk": {"S": f"{_epoch_key(e.ts_utc)}#{e.detector}"},
                "detector": {"S": e.detector},
                "evidence": {"S": json.dumps(e.evidence)},
                "created_at": {"S": datetime.now(UTC).isoformat()},
            }
            written.append(self._put_once(item))
        return written

    def drift_events(self, pair: str) -> list[DriftEvent]:
        page = self.dynamodb.query(
            TableName=self.config.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"DRIFT#{pair}"}},
        )
        return [
            DriftEvent(
                pair,
                _from_key(item["sk"]["S"]),
                item["detector"]["S"],
                json.loads(item["evidence"]["S"]),
            )
            for item in page["Items"]
        ]  # sk order: oldest first

    def alert(self, events: list[DriftEvent]) -> None:
        data = [{"MetricName": "DriftEvents", "Value": float(len(events)), "Unit": "Count"}]
        for e in events:
            data.append(
                {
                    "MetricName": "DriftEvents",
                    "Dimensions": [{"Name": "Pair", "Value": e.pair}],
                    "Value": 1.0,
                    "Unit": "Count",
                }
            )
        self.cloudwatch.put_metric_data(Namespace=self.config.namespace, MetricData=data)

    # ------------------------------------------------------------------ checkpoints
    def _pointer_key(self, pair: str) -> str:
        return f"{self.config.prefix}{pair}/pointer.json"

    def _version_key(self, pair: str, version: int) -> str:
        return f"{self.config.prefix}{pair}/v{version:08d}.pkl"

    def _pointer(self, pair: str) -> dict | None:
        try:
            body = self.s3.get_object(Bucket=self.config.bucket, Key=self._pointer_key(pair))
        except ClientError as err:
            if err.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        return json.loads(body["Body"].read())

    def save_checkpoint(self, pair: str, snapshot: Snapshot) -> CheckpointInfo:
        blob, ts_utc = snapshot.blob, snapshot.ts_utc
        learned_through, n_learned = snapshot.learned_through, snapshot.n_learned
        current = self._pointer(pair)
        version = (current["version"] if current else 0) + 1
        key = self._version_key(pair, version)
        self.s3.put_object(Bucket=self.config.bucket, Key=key, Body=blob)
        pointer = {
            "version": version,
            "key": key,
            "ts_utc": ts_utc.isoformat(),
            "learned_through": learned_through.isoformat() if learned_through else None,
            "n_learned": n_learned,
            "digest": self.key.digest(blob),
        }
        self.s3.put_object(
            Bucket=self.config.bucket,
            Key=self._pointer_key(pair),
            Body=json.dumps(pointer).encode(),
            ContentType="application/json",
        )
        stale = version - self.config.keep_checkpoints
        if stale >= 1:
            self.s3.delete_object(Bucket=self.config.bucket, Key=self._version_key(pair, stale))
        location = f"s3://{self.config.bucket}/{key}"
        return CheckpointInfo(pair, version, location, ts_utc, learned_through, n_learned)

    def load_checkpoint(self, pair: str) -> tuple[CheckpointInfo, bytes] | None:
        pointer = self._pointer(pair)
        if pointer is None:
            return None
        blob = self.s3.get_object(Bucket=self.config.bucket, Key=pointer["key"])["Body"].read()
        what = f"checkpoint v{pointer['version']} of {pair} (s3://{self.config.bucket}/{pointer['key']})"
        self.key.check(blob, pointer.get("digest"), what)
        through = pointer["learned_through"]
        info = CheckpointInfo(
            pair,
            pointer["version"],
            f"s3://{self.config.bucket}/{pointer['key']}",
            datetime.fromisoformat(pointer["ts_utc"]),
            datetime.fromisoformat(through) if through else None,
            pointer["n_learned"],
        )
        return info, blob

    def reset(self, pair: str) -> None:
        self.s3.delete_object(Bucket=self.config.bucket, Key=self._pointer_key(pair))
        prefixes = [f"PRED#{pair}#", f"DRIFT#{pair}", f"WEIGHTS#{pair}"]
        scan = {"TableName": self.config.table, "ProjectionExpression": "pk, sk"}
        doomed = []
        while True:  # a reset is rare and offline: a scan is fine
            page = self.dynamodb.scan(**scan)
            doomed += [
                {"DeleteRequest": {"Key": {"pk": item["pk"], "sk": item["sk"]}}}
                for item in page["Items"]
                if any(item["pk"]["S"].startswith(prefix) for prefix in prefixes)
            ]
            if "LastEvaluatedKey" not in page:
                break
            scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        for start in range(0, len(doomed), 25):
            pending = {self.config.table: doomed[start : start + 25]}
            while pending:
                pending = (
                    self.dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems")
                    or {}
                )

    def put_step_metrics(
        self, ts_utc: datetime, seconds: float, pairs: int, parts: Mapping[str, float]
    ) -> None:
        # the parts stay in the Lambda's log line; CloudWatch keeps the whole step's time
        self.cloudwatch.put_metric_data(
            Namespace=self.config.namespace,
            MetricData=[
                {"MetricName": "StepSeconds", "Value": seconds, "Unit": "Seconds"},
                {"MetricName": "PairsPredicted", "Value": float(pairs), "Unit": "Count"},
            ],
        )

    def close(self) -> None:
        for client in (self.dynamodb, self.s3, self.cloudwatch):
            client.close()
