export { makeDirs, checkPrivateDir, PrivateDirError, type PrivateDirOptions } from "./dirs.js";
export { writeFileDurably, openNoFollow, fsyncDir, type DurableWriteOptions } from "./write.js";
