import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { STACK_VARIANTS, type SynthesizedStack, synthesizeStack } from '../support/synth.js';

/** The message when cfn-lint is missing: the test must fail loudly, never skip. */
const CFN_LINT_MISSING_MESSAGE =
  'cfn-lint not found on PATH: this test lints the synthesized CloudFormation template. Install it with: pip install cfn-lint';

describe('cfn-lint on the synthesized template', () => {
  const variants = STACK_VARIANTS;
  const synths = new Map<string, SynthesizedStack>();
  before(() => {
    for (const variant of variants) synths.set(variant.name, synthesizeStack(variant.props));
  });
  after(() => {
    for (const synth of synths.values()) synth.cleanup();
  });

  it('reports nothing, with and without a KMS key', () => {
    // Arrange: the template files `cdk synth` would deploy (one cfn-lint run: its start-up takes seconds)
    const templateFiles = [...synths.values()].map(
      (synth) => synth.assembly.getStackArtifact(synth.stack.artifactId).templateFullPath,
    );
    assert.equal(templateFiles.length, variants.length);
    // Act
    // W3005 only flags the DependsOn CDK adds on a role its GetAtt already implies: redundant, harmless.
    const lint = spawnSync('cfn-lint', ['--ignore-checks', 'W3005', '--', ...templateFiles], {
      encoding: 'utf8',
    });
    // Assert
    if ((lint.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
      assert.fail(CFN_LINT_MISSING_MESSAGE);
    }
    assert.ifError(lint.error);
    assert.equal(lint.status, 0, `cfn-lint exited ${lint.status}:\n${lint.stdout}${lint.stderr}`);
  });
});
