#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { DataPipelinesStack } from '../lib/data-pipelines-stack.js';

const app = new App();
const retention = app.node.tryGetContext('stagingRetentionDays') as string | number | undefined;
new DataPipelinesStack(app, (app.node.tryGetContext('stackName') as string | undefined) ?? 'DataPipelines', {
  ...(retention === undefined ? {} : { stagingRetentionDays: Number(retention) }),
});
app.synth();
