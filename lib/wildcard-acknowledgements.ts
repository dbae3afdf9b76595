import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';

/**
 * The wildcard permissions this stack accepts, each with its justification. cdk-nag reports IAM4/IAM5
 * findings one by one with ids naming generated logical ids; this list matches them by pattern (as
 * cdk-nag 2's regex `appliesTo` did). A finding no pattern covers still fails synthesis.
 */
export const ACCEPTED_WILDCARDS: readonly { readonly pattern: RegExp; readonly reason: string }[] = [
  {
    pattern: /^AwsSolutions-IAM5\[Resource::<(State|Raw|Destination)Bucket[0-9A-F]{8}\.Arn>\/[a-z_*/]*\*\]$/,
    reason:
      'Object keys under the prefixes the function works in (state/, staging/, <project>/<data source>/ of the landing zone, <project>/_quarantine/, <project>/mp_master_event/, mp_people_data/, mp_identity_mappings_data/): keys name projects, pipelines and hours.',
  },
  {
    pattern: /^AwsSolutions-IAM5\[Resource::arn:(aws|<AWS::Partition>):s3:::[a-z0-9.-]+\/[a-z_*/]*\*\]$/,
    reason: 'Object keys under the prefixes the function works in, in a bucket given by name at deploy time.',
  },
  {
    pattern: /^AwsSolutions-IAM5\[Resource::<Functions[A-Za-z]+[0-9A-F]{8}\.Arn>:\*\]$/,
    reason:
      'Step Functions may invoke any version of the pipeline function it calls (the grant CDK makes for Lambda tasks).',
  },
  {
    pattern:
      /^AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:.*StepWorkflowStateMachine.*\*\]$/,
    reason:
      'The project workflow describes and stops the step workflow executions it starts; their ARNs are not known in advance.',
  },
  {
    pattern: /^AwsSolutions-IAM5\[Resource::\*\]$/,
    reason:
      'X-Ray trace segments, CloudWatch Logs delivery for Step Functions and DynamoDB ListStreams (the config stream consumer) support no resource-level permissions.',
  },
];

/** Runs the AwsSolutions checks over `scope` and acknowledges the findings {@link ACCEPTED_WILDCARDS} covers. */
export function acknowledgeAcceptedWildcards(scope: IConstruct): void {
  const report = new AwsSolutionsChecks(scope).validateScope(scope);
  const byPath = new Map(scope.node.findAll().map((c) => [c.node.path, c]));
  for (const violation of report.violations) {
    const accepted = ACCEPTED_WILDCARDS.find((a) => a.pattern.test(violation.ruleName));
    if (accepted === undefined) continue;
    for (const resource of violation.violatingResources) {
      const construct = resource.constructPath === undefined ? undefined : byPath.get(resource.constructPath);
      if (construct !== undefined)
        Validations.of(construct).acknowledge({ id: violation.ruleName, reason: accepted.reason });
    }
  }
}
