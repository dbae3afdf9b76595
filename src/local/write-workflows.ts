/** Build step: synthesizes the stack and keeps its state machine definitions for local runs. */
import { writeWorkflows } from './workflow-definitions.js';

await writeWorkflows();
