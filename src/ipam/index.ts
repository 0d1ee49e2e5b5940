// IP address management: CIDR math and in-memory allocators for the planners.
export * from "./allocator.js";
export * from "./cidr.js";
