#!/usr/bin/env bash
# Builds the two provider images (docker/*.Dockerfile, context: the repository root) and pushes
# them to the stack's ECR repositories, tagged with a hash of everything that goes into them.
#
#   scripts/build-images.sh [--stack NAME] [--tag TAG] [--no-push] [--print-tag]
#
#   --stack NAME   CloudFormation stack whose outputs name the ECR repositories (default: instance-manager)
#   --tag TAG      image tag (default: the content hash printed by --print-tag)
#   --no-push      build locally only (no AWS calls), tagged provider-telegram:TAG, provider-whatsappweb:TAG
#   --print-tag    print the content-hash tag and exit
#
# Needs: docker with buildx; with push, the AWS CLI v2 and credentials (AWS_PROFILE / AWS_REGION).
# A tag already in ECR is not built again (the repositories are immutable: a tag is its content).
set -euo pipefail
cd "$(dirname "$0")/.."

STACK=instance-manager
TAG=""
PUSH=1
PLATFORM=linux/amd64   # the task definitions' RuntimePlatform (X86_64)
while [ $# -gt 0 ]; do
  case "$1" in
    --stack) STACK=$2; shift 2 ;;
    --tag) TAG=$2; shift 2 ;;
    --no-push) PUSH=0; shift ;;
    --print-tag) PRINT_TAG=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

if command -v sha256sum >/dev/null; then SHA256=(sha256sum); else SHA256=(shasum -a 256); fi  # Linux, macOS
content_tag() {
  # Everything the images are built from: a change to any of these makes a new tag.
  find docker requirements.txt requirements-provider.txt .dockerignore chalicelib provider \
      -type f -not -path '*/node_modules/*' -not -path '*/__pycache__/*' -not -name '*.pyc' -print0 \
    | LC_ALL=C sort -z | xargs -0 "${SHA256[@]}" | "${SHA256[@]}" | cut -c1-16
}
[ -n "$TAG" ] || TAG="src-$(content_tag)"
if [ "${PRINT_TAG:-0}" = 1 ]; then echo "$TAG"; exit 0; fi

output() {
  aws cloudformation describe-stacks --stack-name "$STACK" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}

if [ "$PUSH" = 1 ]; then
  TELEGRAM_REPO=$(output TelegramRepositoryUri)
  WHATSAPP_REPO=$(output WhatsAppRepositoryUri)
  if [ -z "$TELEGRAM_REPO" ] || [ "$TELEGRAM_REPO" = None ]; then
    echo "stack $STACK has no ECR repositories yet: run scripts/deploy.sh" >&2; exit 1
  fi
  REGISTRY=${TELEGRAM_REPO%%/*}
  aws ecr get-login-password | docker login --username AWS --password-stdin "$REGISTRY"
else
  TELEGRAM_REPO=provider-telegram
  WHATSAPP_REPO=provider-whatsappweb
fi

build() {  # build DOCKERFILE REPOSITORY
  local dockerfile=$1 repo=$2
  if [ "$PUSH" = 1 ] && aws ecr describe-images --repository-name "${repo#*/}" \
      --image-ids imageTag="$TAG" >/dev/null 2>&1; then
    echo "$repo:$TAG is already in ECR"
    return
  fi
  local where=--load
  [ "$PUSH" = 1 ] && where=--push
  docker buildx build --platform "$PLATFORM" --provenance=false -f "$dockerfile" -t "$repo:$TAG" "$where" .
  echo "built $repo:$TAG"
}

build docker/telegram.Dockerfile "$TELEGRAM_REPO"
build docker/whatsapp.Dockerfile "$WHATSAPP_REPO"
echo "$TAG"
