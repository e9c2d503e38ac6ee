#!/usr/bin/env bash
# Removes everything scripts/deploy.sh created: the stack (tables and their data, queues, log
# groups, ECR repositories and their images, the admin key secret, roles, the Lambda functions,
# the API) and the artifact bucket. Running provider tasks are stopped first.
#
#   scripts/teardown.sh [--stack instance-manager] [--yes]
#
# The data goes with it: DynamoDB tables (and their point-in-time backups) are deleted. Take an
# on-demand backup first if you need one (docs/DEPLOY.md). The KMS key is scheduled for deletion
# (AWS waits 30 days; until then it can be restored, after that anything sealed with it is lost).
#
# Needs: AWS CLI v2 with credentials and the stack's region (AWS_PROFILE / AWS_REGION).
set -euo pipefail
cd "$(dirname "$0")/.."

STACK=instance-manager
YES=0
while [ $# -gt 0 ]; do
  case "$1" in
    --stack) STACK=$2; shift 2 ;;
    --yes) YES=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-$(aws configure get region || true)}}
[ -n "$REGION" ] || { echo "set AWS_REGION" >&2; exit 1; }
export AWS_REGION=$REGION AWS_DEFAULT_REGION=$REGION
ACCOUNT=$(aws sts get-caller-identity --query Account --output text)
BUCKET="$STACK-artifacts-$ACCOUNT-$REGION"

if [ "$YES" != 1 ]; then
  echo "This deletes stack $STACK in account $ACCOUNT ($REGION) with all its data."
  read -r -p "Type the stack name to go on: " answer
  [ "$answer" = "$STACK" ] || { echo "not deleted"; exit 1; }
fi

if aws cloudformation describe-stacks --stack-name "$STACK" >/dev/null 2>&1; then
  # Provider tasks are started by the service, not by CloudFormation: the cluster cannot be
  # deleted while they run. The reconcile schedule is disabled first, so it starts none again.
  CLUSTER=$(aws cloudformation describe-stacks --stack-name "$STACK" \
    --query "Stacks[0].Outputs[?OutputKey=='ClusterName'].OutputValue" --output text)
  if [ -n "$CLUSTER" ] && [ "$CLUSTER" != None ]; then
    RULE=$(aws cloudformation describe-stack-resources --stack-name "$STACK" \
      --query "StackResources[?ResourceType=='AWS::Events::Rule'].PhysicalResourceId" --output text)
    for rule in $RULE; do aws events disable-rule --name "$rule" || true; done
    TASKS=$(aws ecs list-tasks --cluster "$CLUSTER" --query 'taskArns[]' --output text)
    for task in $TASKS; do
      aws ecs stop-task --cluster "$CLUSTER" --task "$task" --reason "teardown" >/dev/null
    done
    if [ -n "$TASKS" ]; then
      echo "== waiting for the provider tasks to stop"
      # shellcheck disable=SC2086 # one ARN per word, at most 100 per call
      printf '%s\n' $TASKS | xargs -n 100 aws ecs wait tasks-stopped --cluster "$CLUSTER" --tasks
    fi
  fi
  echo "== deleting stack $STACK (the VPC-attached function's network interfaces can take 20+ minutes to go)"
  aws cloudformation delete-stack --stack-name "$STACK"
  aws cloudformation wait stack-delete-complete --stack-name "$STACK"
else
  echo "== no stack $STACK"
fi

if aws s3api head-bucket --bucket "$BUCKET" >/dev/null 2>&1; then
  echo "== deleting the artifact bucket $BUCKET"
  aws s3 rb "s3://$BUCKET" --force >/dev/null
fi
echo "Removed."
