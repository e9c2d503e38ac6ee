#!/usr/bin/env bash
# Deploys (or updates) the whole service to AWS as one CloudFormation stack: DynamoDB tables, SQS
# queues, KMS key, log groups, the admin key secret, ECR repositories, ECS cluster, Fargate task
# definitions, IAM roles, security groups, the Lambda functions and API Gateway; then builds and
# pushes the provider images. Run it again to update; scripts/teardown.sh removes everything.
#
#   scripts/deploy.sh --vpc vpc-0abc --subnets subnet-0aaa,subnet-0bbb [--stack instance-manager]
#                     [--param Key=Value ...]
#
#   --vpc       the VPC (required on the first deploy; later ones reuse the stack's value)
#   --subnets   private subnets of that VPC with a route to a NAT gateway (same)
#   --stack     stack name, also the prefix of every resource name (default: instance-manager)
#   --param     any other parameter of infra/service.yaml or infra/resources.yaml, e.g.
#               --param TelegramApiRoot=https://bot-api.example.com --param LogRetentionDays=90
#
# Needs: AWS CLI v2 with credentials and a region (AWS_PROFILE / AWS_REGION), docker with buildx,
# and the repository's venv (`make install`; Python 3.11, which is the Lambda runtime Chalice picks).
# See docs/DEPLOY.md.
set -euo pipefail
cd "$(dirname "$0")/.."

STACK=instance-manager
VPC=""
SUBNETS=""
PARAMS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --stack) STACK=$2; shift 2 ;;
    --vpc) VPC=$2; shift 2 ;;
    --subnets) SUBNETS=$2; shift 2 ;;
    --param) PARAMS+=("$2"); shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

PY=.venv/bin/python
CHALICE=.venv/bin/chalice
[ -x "$CHALICE" ] || { echo "no $CHALICE: run 'make install' first" >&2; exit 1; }
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || { echo "the venv must be Python 3.11 (Chalice deploys the Lambda with the venv's version)" >&2; exit 1; }
command -v aws >/dev/null || { echo "the AWS CLI v2 is required" >&2; exit 1; }
command -v docker >/dev/null || { echo "docker (with buildx) is required" >&2; exit 1; }

REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-$(aws configure get region || true)}}
[ -n "$REGION" ] || { echo "set AWS_REGION" >&2; exit 1; }
export AWS_REGION=$REGION AWS_DEFAULT_REGION=$REGION
ACCOUNT=$(aws sts get-caller-identity --query Account --output text)
BUCKET="$STACK-artifacts-$ACCOUNT-$REGION"
OUT=out/deploy
mkdir -p "$OUT"

if aws cloudformation describe-stacks --stack-name "$STACK" >/dev/null 2>&1; then EXISTS=1; else EXISTS=0; fi
if [ "$EXISTS" = 0 ] && { [ -z "$VPC" ] || [ -z "$SUBNETS" ]; }; then
  echo "first deploy of $STACK: --vpc and --subnets are required" >&2; exit 2
fi

echo "== $STACK in account $ACCOUNT, $REGION"
if ! aws s3api head-bucket --bucket "$BUCKET" >/dev/null 2>&1; then
  echo "== creating the artifact bucket $BUCKET"
  if [ "$REGION" = us-east-1 ]; then
    aws s3api create-bucket --bucket "$BUCKET" >/dev/null
  else
    aws s3api create-bucket --bucket "$BUCKET" --create-bucket-configuration LocationConstraint="$REGION" >/dev/null
  fi
  aws s3api put-public-access-block --bucket "$BUCKET" --public-access-block-configuration \
    BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true
fi

TAG=$(scripts/build-images.sh --print-tag)
echo "== packaging (image tag $TAG)"
"$PY" infra/compose.py "$OUT/merge.json"
rm -rf "$OUT/chalice"
"$CHALICE" package --stage prod --merge-template "$OUT/merge.json" "$OUT/chalice"
aws cloudformation package --template-file "$OUT/chalice/sam.json" --s3-bucket "$BUCKET" \
  --s3-prefix "$STACK" --output-template-file "$OUT/packaged.yaml" >/dev/null

OVERRIDES=(Prefix="$STACK" ImageTag="$TAG")
if [ -n "$VPC" ]; then OVERRIDES+=(VpcId="$VPC"); fi
if [ -n "$SUBNETS" ]; then OVERRIDES+=(SubnetIds="$SUBNETS"); fi
OVERRIDES+=(${PARAMS[@]+"${PARAMS[@]}"})  # (empty-array safe on bash 3.2)

deploy_stack() {
  echo "== deploying the stack (first time: about 5-10 minutes)"
  aws cloudformation deploy --template-file "$OUT/packaged.yaml" --stack-name "$STACK" \
    --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --no-fail-on-empty-changeset \
    --parameter-overrides "${OVERRIDES[@]}"
}

# The task definitions name the image tag. On an update the images go first, so no task is ever
# started from a tag that is not in ECR yet; on the first deploy the repositories come with the stack.
if [ "$EXISTS" = 1 ]; then
  scripts/build-images.sh --stack "$STACK" --tag "$TAG"
  deploy_stack
else
  deploy_stack
  scripts/build-images.sh --stack "$STACK" --tag "$TAG"
fi

output() {
  aws cloudformation describe-stacks --stack-name "$STACK" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
ENDPOINT=$(output EndpointURL)
SECRET=$(output AdminApiKeySecretArn)
cat <<DONE

Deployed. The API: ${ENDPOINT}api/health
The admin key:  aws secretsmanager get-secret-value --secret-id $SECRET --query SecretString --output text
Try:            curl -s ${ENDPOINT}api/v1/instances -H "x-api-key: \$KEY"
DONE
