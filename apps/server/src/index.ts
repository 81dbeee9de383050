export { buildKnockApp, createKnockContext, type HelperPort, type KnockContext } from "./app.js";
export { compareWithHelper } from "./startup-checks.js";
