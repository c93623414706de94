#!/usr/bin/env python3
"""The peer of `make bench`: the same ingest workload through an AWS Lambda Powertools for Python
idempotent handler, so sfvapi's numbers have something to be compared with.

The handler does the work sfvapi's ingest does: check the v2 HMAC signature (timestamp within
300 s, hex HMAC-SHA256 over "<ts>.<body>", constant-time compare), parse the JSON and its ids, then
record the event exactly once through Powertools' `idempotent_function` with its
`DynamoDBPersistenceLayer` (table key `id` S, TTL `expiration`) on the same DynamoDB Local. It is
invoked in-process from a thread pool at the requested concurrency, on pre-built API Gateway v2
events with the same 2 KB payloads. DynamoDB requests are counted with a botocore event hook.

Prints one JSON object on stdout. Usage:
  bench_peer.py --count 2000 --levels 1,8,32 --size 2048 --secret S   (endpoint from
  AWS_ENDPOINT_URL_DYNAMODB, as scripts/services.sh exports it)
"""

import argparse
import hashlib
import hmac
import json
import os
import re
import threading
import time
import base64
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
import aws_lambda_powertools

TOLERANCE_SECS = 300
EVENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
SF_ID = re.compile(r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")


class Counter:
    """DynamoDB requests by operation, retries included (each HTTP send is one)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.by_op = {}

    def hook(self, event_name=None, **_):
        op = (event_name or "").rsplit(".", 1)[-1]
        with self.lock:
            self.by_op[op] = self.by_op.get(op, 0) + 1

    def reset(self):
        with self.lock:
            self.by_op = {}

    def snapshot(self):
        with self.lock:
            return dict(self.by_op)


def event_body(event_id, size):
    """The same flat event as tools/bench's `event_body`, padded to exactly `size` bytes."""
    v = {
        "eventId": event_id,
        "contactId": "0035e00000XyZ12AAF",
        "caseId": "5005e00000AbCdEAAV",
        "priority": "High",
        "reason": "Payment failed twice; the customer asked for a call back about the refund and the fee.",
        "context": "",
    }
    base = len(json.dumps(v, separators=(",", ":")))
    if size > base:
        v["context"] = "x" * (size - base)
    return json.dumps(v, separators=(",", ":")).encode()


def signed_event(secret, body):
    ts = str(int(time.time()))
    mac = hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/salesforce/events",
        "headers": {
            "content-type": "application/json",
            "x-sfvapi-timestamp": ts,
            "x-sfvapi-signature": "v1=" + mac,
        },
        "requestContext": {"http": {"method": "POST", "path": "/salesforce/events"}},
        "body": body.decode(),
        "isBase64Encoded": False,
    }


def response(status, body):
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


def build_handler(secret, persistence):
    config = IdempotencyConfig(event_key_jmespath="eventId", raise_on_no_idempotency_key=True)

    @idempotent_function(data_keyword_argument="event", persistence_store=persistence, config=config)
    def enqueue(event):
        return {"status": "queued", "eventId": event["eventId"]}

    def handler(event, context):
        # As Powertools documents for idempotent_function inside a Lambda handler.
        config.register_lambda_context(context)
        headers = event.get("headers") or {}
        raw = event.get("body") or ""
        body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
        try:
            ts = int(headers.get("x-sfvapi-timestamp", ""))
        except ValueError:
            return response(401, {"error": "invalid_signature"})
        if abs(int(time.time()) - ts) > TOLERANCE_SECS:
            return response(401, {"error": "invalid_signature"})
        expected = hmac.new(secret, str(ts).encode() + b"." + body, hashlib.sha256).hexdigest()
        given = [s.strip()[3:] for s in headers.get("x-sfvapi-signature", "").split(",") if s.strip().startswith("v1=")]
        if not any(hmac.compare_digest(expected, g) for g in given):
            return response(401, {"error": "invalid_signature"})
        try:
            doc = json.loads(body)
        except ValueError:
            return response(400, {"error": "invalid_payload"})
        if not isinstance(doc, dict):
            return response(400, {"error": "invalid_payload"})
        event_id, contact = doc.get("eventId"), doc.get("contactId")
        if not isinstance(event_id, str) or not EVENT_ID.match(event_id):
            return response(400, {"error": "invalid_payload", "detail": "eventId"})
        if not isinstance(contact, str) or not SF_ID.match(contact):
            return response(400, {"error": "invalid_payload", "detail": "contactId"})
        job = {"eventId": event_id, "contactId": contact, "caseId": doc.get("caseId"),
               "priority": doc.get("priority"), "reason": doc.get("reason")}
        return response(202, enqueue(event=job))

    return handler


class LambdaContext:
    """What Powertools reads from the Lambda context: the time left (30 s, as a Lambda would have)."""

    function_name = "powertools-peer"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self):
        return 30_000


CONTEXT = LambdaContext()


def quantile(sorted_us, q):
    if not sorted_us:
        return 0.0
    return sorted_us[int((len(sorted_us) - 1) * q)]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--levels", default="1,8,32")
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--secret", default="bench-sf-signing-secret")
    p.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"))
    args = p.parse_args()
    secret = args.secret.encode()
    levels = [int(x) for x in args.levels.split(",") if x]

    counter = Counter()
    client = boto3.client(
        "dynamodb",
        endpoint_url=args.endpoint,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=Config(max_pool_connections=max(levels + [10]) * 2, retries={"mode": "standard", "max_attempts": 3}),
    )
    client.meta.events.register("before-send.dynamodb", counter.hook)
    table = "powertools-peer-%d-%d" % (os.getpid(), int(time.time() * 1000))
    client.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    client.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"})
    persistence = DynamoDBPersistenceLayer(table_name=table, boto3_client=client)
    handler = build_handler(secret, persistence)

    # Warm up (imports, connection pool, JMESPath compile), then measure.
    for i in range(50):
        handler(signed_event(secret, event_body("peer-warm-%d" % i, args.size)), CONTEXT)

    out = {"peer": "aws-lambda-powertools %s idempotent_function + DynamoDBPersistenceLayer" % aws_lambda_powertools.__version__
           if hasattr(aws_lambda_powertools, "__version__") else "aws-lambda-powertools", "levels": []}
    run = int(time.time() * 1000)
    for c in levels:
        events = [signed_event(secret, event_body("peer-%d-c%d-%d" % (run, c, i), args.size)) for i in range(args.count)]
        lat = [0.0] * len(events)
        statuses = {}
        lock = threading.Lock()

        def one(i):
            t0 = time.perf_counter()
            r = handler(events[i], CONTEXT)
            lat[i] = (time.perf_counter() - t0) * 1e6
            with lock:
                statuses[r["statusCode"]] = statuses.get(r["statusCode"], 0) + 1

        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=c) as pool:
            list(pool.map(one, range(len(events))))
        wall = time.perf_counter() - t0
        lat.sort()
        out["levels"].append({
            "concurrency": c, "events": len(events), "events_per_s": len(events) / wall,
            "p50_us": quantile(lat, 0.5), "p99_us": quantile(lat, 0.99),
            "statuses": {str(k): v for k, v in statuses.items()},
        })

    new = signed_event(secret, event_body("peer-count-%d" % run, args.size))
    counter.reset()
    r1 = handler(new, CONTEXT)
    out["requests_new"] = counter.snapshot()
    counter.reset()
    r2 = handler(signed_event(secret, event_body("peer-count-%d" % run, args.size)), CONTEXT)
    out["requests_duplicate"] = counter.snapshot()
    out["statuses_new_dup"] = [r1["statusCode"], r2["statusCode"]]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
