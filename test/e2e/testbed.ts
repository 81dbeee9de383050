// The e2e files import the testbed through this shim: the repository root does not list
// @knockport/testbed as a dependency, so a bare "@knockport/testbed" import cannot resolve from test/.
// Vite maps the ".js" specifier to the TypeScript source.
export * from "../../packages/testbed/src/index.js";
