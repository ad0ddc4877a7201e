#!/usr/bin/env bash
# IAM roles for service accounts with awscli against a local VPC at $ENDPOINT: register the
# cluster's OIDC issuer ($ISSUER), create the role of the seed tutorial with a trust policy for
# one ServiceAccount and rds-db:connect, exchange a ServiceAccount token ($TOKEN) for the role's
# credentials and use them. Tokens that STS must refuse: $TOKEN_EXPIRED, $TOKEN_OTHER_SA,
# $TOKEN_WRONG_AUD. Exits non-zero at the first answer that is not what AWS would give.
set -euo pipefail
: "${ENDPOINT:?}" "${ISSUER:?}" "${TOKEN:?}" "${TOKEN_EXPIRED:?}" "${TOKEN_OTHER_SA:?}" "${TOKEN_WRONG_AUD:?}"
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-west-2} AWS_PAGER=""
# IAM is global and STS regional on AWS; here both are the one endpoint, reached both ways
# the SDKs and awscli offer: --endpoint-url for IAM, AWS_ENDPOINT_URL_STS for STS.
export AWS_ENDPOINT_URL_STS=$ENDPOINT

iam() { aws --endpoint-url "$ENDPOINT" iam "$@"; }
expect_error() {
  local code=$1; shift
  local out
  if out=$("$@" 2>&1); then
    echo "FAIL: $* succeeded, want $code" >&2; exit 1
  fi
  grep -q "($code)" <<<"$out" || { echo "FAIL: $*: want $code, got: $out" >&2; exit 1; }
  echo "ok: $(printf "%.50s" "$*") ... -> $code"
}
expect_eq() {
  [ "$1" = "$2" ] || { echo "FAIL: $3: want '$1', got '$2'" >&2; exit 1; }
  echo "ok: $3 = $2"
}

HOST=${ISSUER#*://}
PROVIDER=$(iam create-open-id-connect-provider --url "$ISSUER" --client-id-list sts.amazonaws.com --query OpenIDConnectProviderArn --output text)
expect_eq "arn:aws:iam::111122223333:oidc-provider/$HOST" "$PROVIDER" "provider ARN"
expect_eq "$HOST" "$(iam get-open-id-connect-provider --open-id-connect-provider-arn "$PROVIDER" --query Url --output text)" "provider URL as IAM stores it"
expect_error EntityAlreadyExists iam create-open-id-connect-provider --url "$ISSUER" --client-id-list sts.amazonaws.com

TRUST=$(cat <<JSON
{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"$PROVIDER"},
 "Action":"sts:AssumeRoleWithWebIdentity",
 "Condition":{"StringEquals":{"$HOST:sub":"system:serviceaccount:default:rds-db-access","$HOST:aud":"sts.amazonaws.com"}}}]}
JSON
)
ROLE=$(iam create-role --role-name rds-db-access --assume-role-policy-document "$TRUST" --query Role.Arn --output text)
expect_eq "arn:aws:iam::111122223333:role/rds-db-access" "$ROLE" "role ARN"
expect_error EntityAlreadyExists iam create-role --role-name rds-db-access --assume-role-policy-document "$TRUST"
expect_error MalformedPolicyDocument iam create-role --role-name broken --assume-role-policy-document '{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}'
expect_error ValidationError iam create-role --role-name 'no spaces' --assume-role-policy-document "$TRUST"
iam put-role-policy --role-name rds-db-access --policy-name rds-connect --policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"rds-db:connect","Resource":"arn:aws:rds-db:us-west-2:111122223333:dbuser:*/app"}]}'
# awscli decodes the URL-encoded document IAM returns.
expect_eq "rds-db:connect" "$(iam get-role-policy --role-name rds-db-access --policy-name rds-connect --query 'PolicyDocument.Statement[0].Action' --output text)" "inline policy action"
expect_eq "$HOST:sub" "$(iam get-role --role-name rds-db-access --query 'keys(Role.AssumeRolePolicyDocument.Statement[0].Condition.StringEquals)[?contains(@, `sub`)] | [0]' --output text)" "trust policy condition key"
expect_error DeleteConflict iam delete-role --role-name rds-db-access
expect_error NoSuchEntity iam get-role --role-name nobody

# The pod's exchange, unsigned as the SDKs send it.
read -r AK SK ST < <(aws sts assume-role-with-web-identity --role-arn "$ROLE" --role-session-name pod-1 \
  --web-identity-token "$TOKEN" --query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' --output text)
[[ $AK == ASIA* ]] || { echo "FAIL: access key $AK is not temporary" >&2; exit 1; }
expect_eq "arn:aws:sts::111122223333:assumed-role/rds-db-access/pod-1" \
  "$(AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_SESSION_TOKEN=$ST aws sts get-caller-identity --query Arn --output text)" "caller with the role's credentials"
expect_eq "[]" "$(AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_SESSION_TOKEN=$ST aws --endpoint-url "$ENDPOINT" ec2 describe-vpcs --query Vpcs --output json | tr -d ' \n')" "EC2 with the role's credentials"
expect_error InvalidClientTokenId env AWS_ACCESS_KEY_ID="$AK" AWS_SECRET_ACCESS_KEY="$SK" AWS_SESSION_TOKEN="${ST}x" aws sts get-caller-identity
expect_eq "arn:aws:iam::111122223333:root" "$(aws sts get-caller-identity --query Arn --output text)" "caller with the long-term keys"

aws_web() { aws sts assume-role-with-web-identity --role-arn "$ROLE" --role-session-name pod-1 --web-identity-token "$1"; }
expect_error ExpiredTokenException aws_web "$TOKEN_EXPIRED"
expect_error AccessDenied aws_web "$TOKEN_OTHER_SA"
expect_error InvalidIdentityToken aws_web "$TOKEN_WRONG_AUD"

# A new issuer certificate: the provider's thumbprints are replaced, whole.
NEWTP=0123456789abcdef0123456789ABCDEF01234567
iam update-open-id-connect-provider-thumbprint --open-id-connect-provider-arn "$PROVIDER" --thumbprint-list "$NEWTP"
expect_eq "${NEWTP,,}" "$(iam get-open-id-connect-provider --open-id-connect-provider-arn "$PROVIDER" --query 'ThumbprintList[0]' --output text)" "thumbprint after the update"
expect_error ValidationError iam update-open-id-connect-provider-thumbprint --open-id-connect-provider-arn "$PROVIDER" --thumbprint-list "$(printf "z%.0s" {1..40})"
expect_error NoSuchEntity iam update-open-id-connect-provider-thumbprint --open-id-connect-provider-arn "${PROVIDER}x" --thumbprint-list "$NEWTP"
echo "awscli IAM and STS session: all answers as AWS gives them"
