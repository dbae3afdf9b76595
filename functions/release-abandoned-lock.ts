import { releaseAbandonedLock } from '../src/workflow/abandoned-lock.js';
import { lambdaHandler } from '../src/workflow/lambda.js';

export const handler = lambdaHandler(releaseAbandonedLock);
