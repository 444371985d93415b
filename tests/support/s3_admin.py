"""Administers the moto S3 server that tests/support/s3_server.cpp starts (boto3, signed).

  setup                          while moto's IAM auth is still off: an IAM user with an access key
                                 and an S3 policy, and a role for web identity with the same
                                 policy; prints them as JSON
  create-bucket BUCKET           signed with --access-key/--secret-key
  put-object BUCKET KEY FILE     signed; multipart for large files (boto3's transfer manager)
"""
import argparse
import json
import sys

import boto3
from botocore.config import Config

S3_POLICY = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
})
TRUST_WEB_IDENTITY = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.sluice.test"},
        "Action": "sts:AssumeRoleWithWebIdentity",
    }],
})


def client(args, service, access_key="setup", secret_key="setup"):
    return boto3.client(
        service, endpoint_url=args.endpoint, region_name=args.region,
        aws_access_key_id=access_key, aws_secret_access_key=secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--access-key")
    p.add_argument("--secret-key")
    p.add_argument("command")
    p.add_argument("rest", nargs="*")
    args = p.parse_args()

    if args.command == "setup":
        iam = client(args, "iam")
        iam.create_user(UserName="sluice")
        arn = iam.create_policy(PolicyName="sluice-s3", PolicyDocument=S3_POLICY)["Policy"]["Arn"]
        iam.attach_user_policy(UserName="sluice", PolicyArn=arn)
        key = iam.create_access_key(UserName="sluice")["AccessKey"]
        role = iam.create_role(RoleName="sluice-model-reader",
                               AssumeRolePolicyDocument=TRUST_WEB_IDENTITY)["Role"]
        iam.attach_role_policy(RoleName="sluice-model-reader", PolicyArn=arn)
        json.dump({"access_key": key["AccessKeyId"], "secret_key": key["SecretAccessKey"],
                   "role_arn": role["Arn"]}, sys.stdout)
        return
    s3 = client(args, "s3", args.access_key, args.secret_key)
    if args.command == "create-bucket":
        s3.create_bucket(Bucket=args.rest[0])
    elif args.command == "put-object":
        bucket, key, path = args.rest
        s3.upload_file(path, bucket, key)
    else:
        p.error("unknown command " + args.command)


if __name__ == "__main__":
    main()
