export { makeDirs } from "./make-dirs.js";
export { checkPrivateDir, PrivateDirError, type PrivateDirOptions } from "./dirs.js";
export { writeFileDurably, openNoFollow, fsyncDir, type DurableWriteOptions } from "./write.js";
export { takeInstanceLock, lockPrivateDir, InstanceLockError, type InstanceLock } from "./instance-lock.js";
export { helperStateFiles } from "./helper-state.js";
