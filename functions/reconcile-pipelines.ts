import { reconcileDeployment } from '../src/workflow/activities.js';
import { lambdaHandler } from '../src/workflow/lambda.js';

export const handler = lambdaHandler(reconcileDeployment);
