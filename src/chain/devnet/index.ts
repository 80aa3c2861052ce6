export { startAnvil, anvilCommand, type Anvil, type AnvilOptions, type ReorgTx } from './anvil.ts';
export { compileContracts, CONTRACT_NAMES, type Artifact, type Artifacts, type CompileOptions, type ContractName } from './compile.ts';
export {
  clearArgs,
  createTrader,
  deployDevnet,
  devnetClients,
  orderFor,
  orderbookAbi,
  takeArgs,
  DEV_PRIVATE_KEY,
  DEV_TOKENS,
  type ClearArgs,
  type ClearFill,
  type DevnetClients,
  type DevnetDeployment,
  type DevToken,
  type DevTokenName,
  type Fill,
  type OrderV3,
  type TakeOrderConfigV3,
  type Trader,
} from './deploy.ts';
