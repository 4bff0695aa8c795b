import os

TABLE = os.environ["TABLE"]


def handler(event, context):
    return {"statusCode": 200}
